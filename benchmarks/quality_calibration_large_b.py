"""Part of quality_calibration_large.py's texts (its ``parse`` reads the block): work,
money, law and politics, health, education, travel, weather, nature and animals."""

TEXTS = """
# work
The new intern starts on Monday.
Our team meets every morning at half past nine.
The deadline has been moved forward by a week.
She negotiated a higher salary before accepting the offer.
The staff canteen serves a hot meal at noon.
Please send me the agenda before the meeting.
The project is running three weeks behind schedule.
Our biggest client cancelled their contract.
The board approved the merger yesterday.
The union called a strike over pensions.
Half of the staff work part time.
She runs a small design studio from her garage.
He was made redundant when the factory closed.
I applied for a position at the city library.
The interview panel had four members.
They asked me to describe a difficult situation at work.
My contract ends in September.
The probation period lasts six months.
We use a shared calendar to plan our holidays.
The office is closed between Christmas and New Year.
Meetings without an agenda waste everyone's time.
He answers emails late at night.
She keeps a to-do list on a sticky note.
The sales figures were better than expected.
The warehouse ships two thousand orders a day.
The call centre is open around the clock.
The team celebrated the launch with a cake.
The new software has made the accounts team faster.
Overtime is paid at one and a half times the normal rate.
The firm pays for employees' train tickets.
The manager praised her report in front of everyone.
He asked for a day off to move house.
The office plants died while we were on holiday.
Remote work has changed how the company hires.
The conference call kept dropping.
Please mute your microphone when you are not speaking.
Can everyone see my screen?
I will circulate the minutes after the meeting.
Let's take this discussion offline.
The architect presented three designs for the new school.
The builder quoted a price for the extension.
The lawyer charges by the hour.
She trained as a nurse before becoming a doctor.
The carpenter made the table from a single oak board.
The mechanic found a leak in the brake line.
Farmers start work before sunrise.
The pilot announced that we would land early.
The translator works from Spanish into German.
The journalist protected her sources.
The cleaner comes in after the office closes.
The firefighters trained with the new ladder truck.
Teachers are paid during the summer holidays too.
The chef trains every new cook for a month.
# money
I transferred the money this morning.
The bank blocked my card after a suspicious payment.
My salary is paid at the end of the month.
The shares have doubled in value since January.
The pension fund invests in bonds and property.
They took out a loan to buy a car.
The interest rate on savings is very low.
The company reported a loss for the third year running.
Investors sold their shares after the profit warning.
Inflation makes everyday goods more expensive.
The central bank cut interest rates by a quarter point.
The national debt has grown rapidly since the crisis.
The euro is used in twenty countries.
He keeps his savings in a tin under the bed.
Self-employed workers pay their own insurance.
The accountant found an error in the tax return.
She saves a tenth of her income.
Cash machines in the village charge a fee.
The price of petrol rose again this week.
Electricity bills have gone up by a third.
We split the bill equally.
The insurance paid for the broken window.
The startup raised ten million in its first round.
The bakery went bankrupt after the rent increase.
Crypto prices swing wildly from day to day.
A mortgage is usually paid back over twenty-five years.
The shop offers interest-free payments over twelve months.
The landlord kept part of our deposit.
Child benefit is paid every four weeks.
The minimum wage will rise in April.
The company pays its suppliers within sixty days.
Economists expect slower growth next year.
Exports fell because of the strong currency.
The stock exchange opens at eight in the morning.
Gold is seen as a safe investment in uncertain times.
The receipt shows the tax separately.
The invoice number must appear on every payment.
# law and politics
The defendant pleaded not guilty.
The jury reached a verdict after two days.
The judge adjourned the hearing until Friday.
The witness contradicted her earlier statement.
He was fined for speeding on the motorway.
The new law bans smoking in cars with children.
Voters will elect a new mayor in May.
The prime minister announced a cabinet reshuffle.
The opposition demanded an inquiry.
The bill passed its second reading.
Protesters gathered outside the parliament building.
The treaty was signed by thirty countries.
The election result was very close.
Turnout was lower than at the last election.
The president vetoed the budget.
The court ruled that the dismissal was unfair.
Tenants have the right to a written contract.
A will must be signed in front of two witnesses.
The company was sued for breach of contract.
The suspect was released on bail.
The police are appealing for witnesses.
Shoplifting is punished with a fine or prison.
The patent expires after twenty years.
Copyright lasts seventy years after the author's death.
The council approved plans for a new bridge.
The referendum asked whether to leave the union.
The ambassador was called in for talks.
Both countries agreed to a ceasefire.
The government declared a state of emergency.
Every citizen over eighteen may vote.
The constitution guarantees freedom of speech.
The data protection law limits what companies may store.
The landlord needs a court order to evict a tenant.
The lawyer advised him to say nothing.
The trial is expected to last six weeks.
# health and medicine
The doctor prescribed a course of antibiotics.
Take one tablet twice a day with food.
Do not exceed the stated dose.
The dentist filled two of my teeth.
I have an appointment with the eye doctor on Thursday.
He broke his wrist falling off a ladder.
The wound needed five stitches.
She has a high temperature and a cough.
Measles spreads easily between unvaccinated children.
Diabetes affects how the body uses sugar.
High blood pressure often has no symptoms.
Smoking damages almost every organ in the body.
The operation went well, and he is recovering.
The waiting room was full of coughing patients.
The pharmacist explained the side effects.
Asthma can be triggered by cold air.
Pollen makes my eyes itch every spring.
A healthy adult has about five litres of blood.
The heart beats around a hundred thousand times a day.
Vitamin D is made in the skin in sunlight.
Iron deficiency can make you feel tired.
The x-ray showed a small fracture.
The scan found nothing unusual.
She is allergic to penicillin.
Wear sunscreen to protect your skin.
The vaccine is given in two doses.
Hand sanitiser should contain at least sixty percent alcohol.
The hospital car park is very expensive.
The surgeon has performed the procedure hundreds of times.
Migraines can last for several days.
Depression is a common and treatable illness.
Talking to a counsellor helped her through a hard year.
Babies are weighed at every check-up.
The blood test results will be ready in three days.
Chickenpox causes an itchy rash.
Mosquitoes can carry malaria.
Drink less alcohol and get more sleep.
Eating slowly helps you notice when you are full.
The clinic offers free flu jabs for the elderly.
Her broken leg is in plaster for six weeks.
Keep the bandage dry.
Call an ambulance!
Is there a doctor on board?
Where does it hurt?
How long have you had these symptoms?
# education
The school year starts in September.
The teacher gave us homework for the holidays.
He failed his maths exam and has to retake it.
She graduated with a degree in chemistry.
Lectures start at eight in the morning.
The professor is writing a book on ancient Egypt.
Our class went on a trip to the science museum.
The pupils wear a blue uniform.
The headteacher spoke at the assembly.
Reading aloud helps children learn new words.
Learning a language takes patience.
I practise my French with an app every day.
She is doing a PhD on climate models.
The student loan is repaid after graduation.
The essay must be no longer than two thousand words.
Cheating in the exam leads to disqualification.
The kindergarten has a large garden.
The school bus picks the children up at half past seven.
Parents' evening is next Wednesday.
The teacher wrote the equation on the board.
The course covers statistics and programming.
The lab report is due next week.
Students protested against higher fees.
The spelling test had twenty words.
He learned to read when he was four.
Night classes are offered for adults.
She teaches history at a secondary school.
The dictionary lists over a hundred thousand words.
The exam results will be published in August.
# travel and transport
We missed our connection in Frankfurt.
The flight takes about eleven hours.
Please fasten your seatbelt.
My suitcase was lost on the way to Rome.
We stayed in a small guesthouse run by an old couple.
The hostel was cheap but noisy.
The ferry crossing was rough.
The night train arrives at six in the morning.
We rented a car at the airport.
The motorway was jammed for miles.
Traffic is heavy during the rush hour.
There is a speed camera at the end of the road.
The car needs new tyres.
The petrol station is closed on Sundays.
Cyclists must use the cycle lane.
The underground is the fastest way across the city.
Buy your ticket before boarding the bus.
The tram stop is right outside the hotel.
The taxi rank is to the left of the exit.
We walked across the old town in an hour.
The view from the tower was worth the climb.
The beach was crowded with tourists.
We camped beside a lake in the mountains.
The trail is marked with red and white stripes.
The border crossing took two hours.
Show your passport at the gate.
The airline lost our booking.
Our room was not ready when we arrived.
The receptionist gave us a map of the city.
Breakfast on the terrace was the highlight of the trip.
We took hundreds of photos.
The souvenir shops were all the same.
Jet lag kept me awake all night.
Carry some cash for the toll roads.
The car hire company charged us for a scratch.
The timetable changes in December.
Seats can be reserved for a small fee.
The station has lifts to every platform.
We landed twenty minutes early.
The island can only be reached by boat.
Hitchhiking is illegal on the motorway.
The bike path follows the river for fifty kilometres.
# weather
It's pouring with rain.
The sun came out in the afternoon.
A cold wind is blowing from the north.
There was frost on the car this morning.
The snow was knee deep.
It has not rained for six weeks.
The drought has dried up the reservoir.
The river burst its banks after the storm.
A hurricane is moving toward the coast.
The temperature dropped below zero overnight.
It's unusually warm for October.
Humidity makes the heat hard to bear.
A rainbow appeared over the hills.
Hail damaged the roofs of several cars.
The wind blew the umbrella inside out.
We built a snowman in the garden.
The summer was wet and cool.
The monsoon brings heavy rain from June to September.
Lightning struck the church tower.
The storm uprooted trees along the avenue.
A heat warning has been issued for the weekend.
The sky is clear and full of stars.
Clouds are gathering over the mountains.
It drizzled all day.
The puddles froze overnight.
Spring is the windiest season here.
# nature and animals
Foxes often live close to towns.
The owl hunts at night.
Wolves live and hunt in packs.
The squirrel buried nuts all over the garden.
Swallows return every spring to nest under the roof.
The frog laid hundreds of eggs in the pond.
Butterflies feed on the nectar of flowers.
The snail left a silver trail on the path.
Deer came to the edge of the forest at dusk.
A hedgehog lives under our shed.
Seagulls steal chips from tourists.
The eagle circled high above the valley.
Dolphins swim alongside the boat.
Sharks have several rows of teeth.
The octopus can change its colour in a second.
Crabs walk sideways.
Jellyfish have no brain.
The whale surfaced close to the shore.
Polar bears hunt seals on the sea ice.
Camels can go for days without water.
Giraffes sleep only a few hours a day.
Lions rest for most of the day.
Gorillas live in family groups.
The chimpanzee used a stick to catch termites.
Koalas eat almost nothing but eucalyptus leaves.
Kangaroos carry their young in a pouch.
Parrots can live for decades.
Hummingbirds beat their wings very fast.
The woodpecker drummed on the old oak.
Bees communicate by dancing.
Wasps build nests out of chewed wood.
Mosquitoes are most active at dusk.
The spider spun its web across the doorway.
Earthworms improve the soil.
Snakes smell with their tongues.
The tortoise is over a hundred years old.
The forest floor is covered with moss.
Oak trees can live for a thousand years.
Sunflowers turn to face the sun.
Cacti store water in their stems.
Bamboo is one of the fastest-growing plants.
Mushrooms appear after autumn rain.
The meadow is full of wild flowers.
Ivy has covered the whole wall.
Seeds can be carried for miles by the wind.
Moss grows on the north side of the trees here.
The rainforest is home to half of all species.
Deserts can be freezing at night.
The tide goes out twice a day.
The waterfall drops more than a hundred metres.
The lake freezes over in January.
The cliffs are slowly being worn away by the sea.
A river delta forms where the river meets the sea.
The cave is full of stalactites.
The mountain is covered in snow all year.
The island was formed by a volcano.
The wildlife park protects rare birds.
The beavers built a dam across the stream.
Hunting is banned in the national park.
The rhino population has recovered slightly.
The bird watchers counted forty species.
Light pollution confuses migrating birds.
Plastic waste is found in every ocean.
The old hedge is home to many insects.
""".strip()
