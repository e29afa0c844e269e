"""Part of quality_calibration_large.py's texts (its ``parse`` reads the block): specialist
topics, sayings, numbers and dates, dialogue, more near paraphrases and short texts."""

TEXTS = """
# specialist: medicine
The patient presented with chest pain radiating to the left arm.
An MRI scan uses magnetic fields, not radiation.
Type 1 diabetes is treated with insulin injections.
The tumour was benign and was removed completely.
Paracetamol reduces fever but not inflammation.
The anaesthetist checked her breathing throughout the operation.
A stroke happens when blood flow to part of the brain is cut off.
Chronic pain can change how the nervous system works.
The trial compared the new drug with a placebo.
Cholesterol builds up in the walls of the arteries.
The liver can regrow after part of it is removed.
Kidney stones are very painful to pass.
Hearing loss often begins at high frequencies.
# specialist: law and finance
The plaintiff is seeking damages for lost earnings.
The clause limits the supplier's liability.
The appeal was dismissed by the higher court.
Under the lease, repairs to the roof are the landlord's responsibility.
The firm was accused of insider trading.
The auditors signed off the annual accounts.
Bonds pay a fixed amount of interest each year.
The fund charges an annual fee of one percent.
Diversification reduces the risk of a portfolio.
Compound interest makes savings grow faster over time.
The company's debt is larger than its yearly revenue.
The merger needs approval from the competition authority.
Dividends are paid to shareholders twice a year.
The balance sheet lists assets and liabilities.
# specialist: engineering and industry
The beam bends under load but springs back.
Concrete gets stronger for weeks after it is poured.
Steel is recycled more than any other material.
The turbine spins at three thousand revolutions a minute.
The circuit breaker trips when the current is too high.
The pipeline carries gas across three countries.
The assembly line produces a car every minute.
The welder repaired the crack in the frame.
The dam holds back a lake twenty kilometres long.
The tunnel was dug from both ends at once.
Ball bearings reduce friction in the wheel.
The engine converts heat into motion.
Solar farms take up a lot of land.
Batteries lose capacity as they age.
The grid must balance supply and demand every second.
# specialist: farming and food production
The cows are milked twice a day.
Sheep are sheared in early summer.
The wheat harvest begins in August.
The vineyard produces twenty thousand bottles a year.
Organic farms do not use synthetic pesticides.
The orchard has fifty apple trees.
Chickens lay fewer eggs in winter.
The greenhouse grows tomatoes all year round.
Bees are brought to the orchard when the trees flower.
The field was left fallow for a year.
Irrigation is needed in the dry months.
The cheese is aged in caves for two years.
The coffee beans are roasted in small batches.
Rice grows in flooded fields.
# culture, beliefs and customs
In many countries people shake hands when they meet.
Shoes are taken off before entering the temple.
The festival of lights is celebrated in autumn.
Families gather for a big meal at the new year.
The wedding lasted three days.
The town holds a carnival before Lent.
Fireworks are set off at midnight.
Children receive presents on the sixth of December in some countries.
The mosque was full for Friday prayers.
The church choir sings at the Sunday service.
The synagogue was built in the eighteenth century.
The monks rise before dawn to pray.
People leave flowers on the graves in November.
Tea is offered to every visitor.
It is polite to bring a small gift when you visit.
Tipping the waiter is customary here.
# sayings and proverbs
Better late than never.
Practice makes perfect.
Actions speak louder than words.
Don't count your chickens before they hatch.
Every cloud has a silver lining.
Rome wasn't built in a day.
The early bird catches the worm.
Too many cooks spoil the broth.
When in Rome, do as the Romans do.
Where there's smoke, there's fire.
Look before you leap.
Two heads are better than one.
You can't judge a book by its cover.
Honesty is the best policy.
Time flies when you're having fun.
A picture is worth a thousand words.
No pain, no gain.
Easy come, easy go.
Better safe than sorry.
Old habits die hard.
# numbers, dates and times
The meeting starts at half past two.
My flight leaves at 6:45.
The shop opens at nine sharp.
It's a quarter to eleven.
The film is two and a half hours long.
The offer ends on the thirty-first of May.
Her birthday is on the twelfth of October.
The building has forty-two floors.
The population of the town is about twelve thousand.
The parcel weighs three kilos.
The room is four metres by five.
The journey is three hundred kilometres.
The price is nineteen ninety-nine.
The temperature reached thirty-eight degrees.
Only one in ten people replied to the survey.
Sales rose by twelve percent.
The flat is on the third floor.
Chapter seven starts on page one hundred and twelve.
The library holds two million books.
We have lived here since 2015.
The bridge is nine hundred metres long.
Three quarters of the students passed.
He was born in the spring of 1987.
Twice a week is enough.
Every other Sunday.
From Monday to Friday.
Twenty past four.
Page 12
Room 204
Gate 7
Version 2.1
# dialogue
Where are you from? I'm from a small town near the coast.
Is this your bag? No, mine is the red one.
Shall I open the window? Yes, it's very stuffy in here.
Did you lock the car? I think so, but I'll check.
What did the doctor say? Just rest and plenty of fluids.
Can I help you? I'm just looking, thanks.
How was the holiday? Wonderful, but far too short.
Are you coming tonight? I'll try, but I may be late.
Who's calling, please? It's Maria from the accounts team.
What would you like to drink? Just water for me.
How long have you been waiting? About twenty minutes.
Is the soup vegetarian? Yes, it's made with vegetable stock.
Do you want the window or the aisle? The window, please.
Have you finished the report? Almost, I'll send it tonight.
How do I get to the museum? Take the number five bus.
"I'll be there in five minutes," she said.
"Don't touch that!" shouted the guard.
"Is anyone there?" he called into the dark.
"We're closed," said the man behind the counter.
"Tickets, please," said the inspector.
# more near paraphrases
He sold his car to pay for the trip.
To fund the journey, he got rid of his car.
The school has banned mobile phones in class.
Phones are no longer allowed in lessons at the school.
The cake needs another ten minutes in the oven.
Leave the cake to bake for ten more minutes.
She moved to the countryside to get away from the noise.
She left the city for the quiet of the country.
Sales of vinyl records have risen again.
More people are buying records on vinyl once more.
The new manager wants everyone in the office on Mondays.
Our new boss expects the whole team in the office every Monday.
The town has no cinema since the old one closed.
Since the old cinema shut, there has been nowhere in town to watch films.
Most accidents happen close to home.
The majority of accidents take place near where people live.
The tap water here is safe to drink.
You can drink the water from the tap here.
He has not spoken to his brother for years.
He and his brother have not talked in a long time.
The shop gives a discount to pensioners.
Older customers get a reduced price at the shop.
The restaurant is run by two sisters.
Two sisters own and manage the restaurant.
I can't hear you, the line is bad.
The connection is poor and I can barely hear you.
The trees were planted a hundred years ago.
The trees are a century old.
Our son wants to be a vet.
Our boy hopes to become an animal doctor.
She was too tired to finish the race.
Exhausted, she could not complete the race.
The building is being turned into a hotel.
They are converting the building into a hotel.
The car park is free after six.
You do not have to pay for parking after six in the evening.
The river is at its highest level for twenty years.
The water in the river has not been this high for two decades.
He quit smoking when his daughter was born.
When his daughter arrived, he gave up cigarettes.
The phone is waterproof up to two metres.
You can take the phone two metres under water.
The class was split into two groups.
The pupils were divided into two teams.
The village is famous for its cheese.
People know the village for the cheese made there.
The painting sold for a record price.
The picture went for more money than any before it.
He reads the newspaper on his phone.
He gets the news on his mobile instead of on paper.
# short texts and fragments
Breakfast included.
Sea view.
Free wifi.
Pets welcome.
Under new management.
Now hiring.
Limited edition.
New and improved!
Special offer.
Fresh today.
Homemade soup.
Daily specials.
Kids eat free.
Happy hour five to seven.
Last chance!
Coming soon.
Best seller.
Out now.
Live music tonight.
Members only.
Breaking news.
Weather update.
Traffic report.
Top stories.
Sports results.
Recipe of the week.
Tip of the day.
Question of the day.
Photo of the day.
Good news.
Bad news.
Great question!
Nice shot!
Lucky you!
Poor thing.
Oh dear.
Oh well.
Oh, I see.
Ah, that makes sense.
Hmm, let me think.
Um, I'm not sure.
Right, let's start.
Anyway, where was I?
By the way, did you call your mother?
In any case, we'll find out tomorrow.
On second thoughts, let's stay in.
First things first.
Last but not least.
So far so good.
Here you are.
There you go.
Here it is!
Over here!
Up there.
Not yet.
Not now.
Almost there.
Nearly done.
All done!
Well, that's that.
See you on Monday, then.
Nice weekend!
Good afternoon, how can I help?
Morning, everyone, coffee's ready.
Evening, neighbour!
Hi again!
Hello, is anybody there?
Welcome aboard.
Safe home!
Sleep tight.
Night night.
Speak soon.
Love you!
Miss you already.
Hugs and kisses.
Bon appétit!
Good riddance!
Good grief!
Heavens, look at the time!
Dear me.
Hang on!
Come on!
Go for it!
Keep it up!
Enough is enough.
Let it be.
Let me see.
Leave it there.
Be right back.
Be quiet!
Be nice.
Sit down, please.
Stand up.
Hands up!
Line up here.
Pass the salt, please.
""".strip()
